"""SNA: the skip-connection CDNA model of Ebert et al. (2017), as the SAVP repository ran it.

Port of the original's ``sna_model.py`` (specs/savp.md §3.1): Finn et al.'s
conv-LSTM tower (:mod:`conv_lstm_cdna`) with five conv-LSTMs of ``ngf``,
``2 ngf``, ``4 ngf``, ``2 ngf``, ``ngf`` channels (16, 32, 64, 32, 16), ReLU after
the last layer norm, and masks over [first frame (``first_image_background``)
or previous frame, scratch image (``generate_scratch_image``, CDNA only),
``num_masks`` transformed images].  Action-conditioned: every batch must hold
``actions`` and ``states`` (BAIR with ``--dataset_hparams use_state=True``).

Left out: the original's pixel-distribution outputs (``pix_distribs``, not in
BAIR) and ``transformation='stp'`` (it imports a module the repository does not ship).
The original reshapes masks to a hard-coded 64x64; here any size divisible by 8 works.
"""

from video_prediction.models.conv_lstm_cdna import ConvLSTMCDNAModel, TowerSpec, state_action_dims

REQUIRED_KEYS = ("actions", "states")


def check_actions_and_states(keys):
    """ValueError naming what is missing when a batch has no actions or no states."""
    missing = [key for key in REQUIRED_KEYS if key not in keys]
    if missing:
        raise ValueError(
            f"sna is action-conditioned and needs {' and '.join(repr(k) for k in missing)} in every batch "
            f"(a dataset with states and actions, e.g. bair with --dataset_hparams use_state=True); "
            f"the batch has: {', '.join(sorted(keys))}")


class SNAVideoPredictionModel(ConvLSTMCDNAModel):
    """SNA (``sna_l1`` / ``sna_l2`` in the paper's comparisons); deterministic, needs actions and states."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        # specs/savp.md §3.1, the original's SNAVideoPredictionModel defaults (batch 32, l2 1, cdna,
        # num_masks 10, schedule_sampling_k 900 come from ConvLSTMCDNAModel)
        hparams.update(
            ngf=16,
            kernel_size=(5, 5),
            first_image_background=True,
            generate_scratch_image=True,
        )
        return hparams

    @property
    def tower_spec(self):
        ngf = self.hparams.ngf
        return TowerSpec(
            encoder_lstm_sizes=((ngf,), (ngf * 2,)),  # the original's lstm_size = ngf * [1, 2, 4, 2, 1]
            bottleneck_lstm_size=ngf * 4,
            decoder_lstm_sizes=(ngf * 2, ngf),
            top_relu=True,  # convt3 keeps slim's default ReLU after its layer norm
            dna_relu=True,  # so does convt4_cam2
            background="first" if self.hparams.first_image_background else "previous",
            scratch_takes_last_mask=False,
            masks_name="convt7_cam2",
            dna_kernels_name="convt4_cam2",
        )

    def tower_options(self, shapes):
        check_actions_and_states(shapes)
        hp = self.hparams
        action_dim, state_dim = state_action_dims(shapes)
        return dict(transformation=hp.transformation, num_masks=hp.num_masks, kernel_size=hp.kernel_size,
                    scratch_image=hp.generate_scratch_image, action_dim=action_dim, state_dim=state_dim,
                    condition_on_state_action=True)

    def step_conditioning(self, time_major):
        check_actions_and_states(time_major)
        return time_major["actions"], time_major["states"][0]
