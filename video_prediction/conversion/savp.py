"""Convert an original SAVP TF1 checkpoint (``alexlee-gk/video_prediction``) into a run directory.

The original saves a name-based TF1 checkpoint (``model-<step>.index`` /
``.data-*`` + a ``checkpoint`` file) next to ``options.json``,
``dataset_hparams.json`` and ``model_hparams.json`` (specs/savp.md §5).  The
converter

* applies that directory's own hparams; keys the original dropped as deprecated
  are mapped (``e_net='none'`` -> ``use_encoder=False``, the paper's ``ours_gan``
  without encoder) or dropped with a logged note, and refused when they switch
  on a network this port does not have (the legacy pix2pix/MoCoGAN
  discriminators, the ``legacy`` encoder);
* builds :class:`~video_prediction.models.savp.SAVPVideoPredictionModel` for the
  original frames (and the action/state sizes read from the checkpoint);
* reads the checkpoint by name (``tf.train.load_checkpoint``) and assigns every
  variable: generator cell (``generator/rnn/savp_cell/...`` or, for older
  checkpoints, ``dna_cell``), posterior encoder, learned prior, both spectral-norm
  discriminators (prior path and the VAE-GAN copy) with their ``u`` vectors, and
  ``global_step``.  Adam slots, ``beta*_power`` and the metrics' frozen VGG16
  (``vgg/*``, in 2018 checkpoints) are skipped.  A checkpoint
  variable without a counterpart, a model weight without a checkpoint value and a
  shape mismatch are errors naming the variable;
* writes ``options.json``, ``dataset_hparams.json``, ``model_hparams.json`` and a
  ``ckpt-<step>`` checkpoint that ``generate.py`` / ``evaluate.py --checkpoint``
  load.

No kernel changes layout: TF1 kernels are HWIO / DHWIO / ``[in, out]`` like
ours.  The LSTM cells (``BasicLSTMCell`` on the latent, ``BasicConv2DLSTMCell``
in the U-Net) keep the TF1 gate order ``[i, j, f, o]`` along the last kernel axis
and add the forget bias 1.0 at run time (TF1 does not store it in the bias), so
gate kernels and biases are copied unchanged; :data:`TF1_GATE_ORDER` documents
this and the tests check it against a TF1 reference step.

Variable names are derived from the original's variable scopes
(``savp_model.py``, ``networks.py``, ``ops.py``, ``rnn_ops.py``), not from a
downloaded checkpoint (specs/savp.md §5 asks to verify them).  Where the
original's history used other names, they are accepted as aliases: ``dna_cell``
for ``savp_cell`` (the original's own restore alias), and the discriminator
layouts of the 2018 code the pretrained models date from
(``discriminator/video_sn_conv0_0/conv3d/{kernel,u,bias}``,
``discriminator_encoder/...`` for the VAE-GAN copy; see :func:`_discriminator_names`).
Two facts from the original's issue tracker agree with this reading: the KTH
``ours_gan`` checkpoint has no ``generator/encoder/*`` variables (#34: HEAD, which
dropped ``e_net``, found ``generator/encoder/layer_3/InstanceNorm/beta``
uninitialised), and the KTH checkpoints were trained on RGB frames (#22: their
``masks`` kernel is ``[3, 3, 53, 7]``); the frame channels are therefore read
from the checkpoint.
"""

import logging
import os
import re
from typing import NamedTuple

import keras
import tensorflow as tf

from video_prediction.conversion.bookkeeping import ConversionError, Target, assign_by_name, write_run_directory
from video_prediction.conversion.formats.tf1 import find_original_checkpoint, open_checkpoint
from video_prediction.hparams import load_hparams_file
from video_prediction.layers.conv_rnn import BasicConv2DLSTMCell, BasicGRUCell, BasicLSTMCell, Conv2DGRUCell
from video_prediction.layers.normalization import InstanceNormalization, LayerNormalization
from video_prediction.layers.resampling import Conv2D, ConvPool2D, Deconv2D, UpsampleConv2D
from video_prediction.models.savp import DEPRECATED_HPARAMS, SAVPVideoPredictionModel

logger = logging.getLogger(__name__)

#: Gate order of the TF1 LSTM kernels/biases along their last axis, which our
#: cells share (so no reordering); the forget bias (+1.0) is applied at run time.
TF1_GATE_ORDER = ("i", "j", "f", "o")
FORGET_BIAS = 1.0

#: Scope of the generator cell, then older names of it (the original's restore maps savp_cell -> dna_cell).
CELL_SCOPES = ("generator/rnn/savp_cell", "generator/rnn/dna_cell")
#: TF1 layer scope of the conv-RNN cells: TF1 snake-cases the class name (``BasicConv2DLSTMCell`` ->
#: ``basic_conv2dlstm_cell``); the spelling specs/savp.md §5 guessed is accepted as an alias.
CONV_LSTM_SCOPES = ("basic_conv2dlstm_cell", "basic_conv2d_lstm_cell")
CONV_GRU_SCOPES = ("conv2dgru_cell", "conv2d_gru_cell")
#: Discriminator kind -> its scope under ``discriminator/`` at HEAD (networks.py).
DISCRIMINATOR_SCOPES = {"video_sn": "video", "image_sn": "image", "images_sn": "images"}

#: Optimizer state the converter skips: Adam slots and the beta powers (``_1`` for the second optimizer).
OPTIMIZER_VARIABLE = re.compile(r"(/Adam(_\d+)?$)|(^beta[12]_power(_\d+)?$)")
#: Also skipped: the frozen ImageNet VGG16 that the 2018 code built in every training graph for its
#: vgg_csim/vgg_cdist metrics (its Saver kept all global variables); it is not part of the model.
METRIC_VARIABLE = re.compile(r"^vgg/")

#: options.json dataset name -> our registry name (``softmotion`` is the original's name for BAIR).
DATASET_NAMES = {"softmotion": "bair", "bair": "bair", "kth": "kth", "google_robot": "google_robot",
                 "sv2p": "sv2p", "ucf101": "ucf101", "cartgripper": "cartgripper"}
#: Frames of the original datasets as stored (specs/savp.md §2.2-2.4); scale_size/crop_size resize them.
ORIGINAL_IMAGE_SHAPES = {"bair": (64, 64, 3), "kth": (64, 64, 1), "google_robot": (512, 640, 3),
                         "sv2p": (64, 64, 3), "ucf101": (240, 320, 3), "cartgripper": (48, 64, 3)}

# Deprecated keys (specs/savp.md §3.3) by what they did in the April 2018 code.
_LEGACY_GAN_WEIGHTS = ("gan_weight", "vae_gan_weight", "tuple_gan_weight", "tuple_vae_gan_weight",
                       "image_gan_weight", "image_vae_gan_weight", "video_gan_weight", "video_vae_gan_weight",
                       "acvideo_gan_weight", "acvideo_vae_gan_weight")
_LEGACY_DISCRIMINATOR_SETTINGS = ("d_net", "d_conditional", "d_downsample_layer", "d_use_gt_inputs")
assert set(_LEGACY_GAN_WEIGHTS + _LEGACY_DISCRIMINATOR_SETTINGS + ("e_net", "num_gpus")) == set(DEPRECATED_HPARAMS)


# -- hparams ------------------------------------------------------------------------------------


def translate_hparams(original):
    """The original's ``model_hparams.json`` values as our hparams; returns ``(hparams, notes)``.

    Every deprecated key is handled explicitly (mapped or dropped, each with a
    note); one that enabled a network this port lacks raises ConversionError.
    """
    hparams, notes = dict(original), []
    for key in DEPRECATED_HPARAMS:
        if key not in hparams:
            continue
        value = hparams.pop(key)
        if key == "e_net":
            if value == "none":
                hparams["use_encoder"] = False
                notes.append("e_net='none' -> use_encoder=False (no posterior encoder; latents from the prior)")
            elif value == "n_layer":
                notes.append("e_net='n_layer' dropped (the only encoder of this port)")
            else:
                raise ConversionError(f"e_net={value!r}: this encoder of the original is not ported (only 'n_layer')")
        elif key in _LEGACY_GAN_WEIGHTS:
            if value:
                raise ConversionError(f"{key}={value}: the legacy discriminator it enables is not ported (only the "
                                      "spectral-norm image/video discriminators of *_sn_*gan_weight)")
            notes.append(f"{key}=0 dropped (a legacy discriminator that was off)")
        elif key in _LEGACY_DISCRIMINATOR_SETTINGS:
            notes.append(f"{key}={value!r} dropped (a setting of the legacy discriminators only)")
        else:  # num_gpus
            notes.append(f"{key}={value!r} dropped (use --strategy for several devices)")
    if "conv_rnn_norm_layer" not in hparams and "norm_layer" in hparams:
        # Before conv_rnn_norm_layer existed the conv-RNNs used norm_layer.
        hparams["conv_rnn_norm_layer"] = hparams["norm_layer"]
        notes.append(f"conv_rnn_norm_layer={hparams['norm_layer']!r} taken from norm_layer (older hparams)")
    return hparams, notes


# -- locating and reading the original run --------------------------------------------------------


def read_original_run(prefix):
    """``(options, dataset_hparams, model_hparams)`` from the JSON files next to ``prefix``.

    Only ``model_hparams.json`` is required (the architecture depends on it).
    """
    directory = os.path.dirname(prefix)
    values = []
    for name in ("options.json", "dataset_hparams.json", "model_hparams.json"):
        path = os.path.join(directory, name)
        values.append(load_hparams_file(path) if name == "model_hparams.json" or os.path.exists(path) else {})
    return tuple(values)


def original_image_shape(dataset_name, dataset_hparams, shapes=None):
    """(H, W, C) of the frames the original model saw.

    H, W: the dataset's stored size, or its crop/scale hparams.  C: from the
    checkpoint's ``scratch_image`` kernel when there is one (the 2018 KTH
    preprocessing kept 3 channels where the final one keeps 1), else the dataset's.
    """
    if dataset_name not in ORIGINAL_IMAGE_SHAPES:
        raise ConversionError(f"unknown frame size for dataset {dataset_name!r}; pass --image_shape H,W,C")
    height, width, channels = ORIGINAL_IMAGE_SHAPES[dataset_name]
    size = dataset_hparams.get("scale_size") or dataset_hparams.get("crop_size") or 0
    if size:
        height = width = int(size)
    for prefix in CELL_SCOPES:
        kernel = (shapes or {}).get(f"{prefix}/scratch_image/conv2d/kernel")
        if kernel is not None:
            channels = int(kernel[-1])
            break
    return height, width, channels


# -- the variable map -----------------------------------------------------------------------------


class _VariableMap:
    """Collects ``{original name: Target}`` while walking the model's layers."""

    def __init__(self):
        self.targets = {}

    def add(self, prefixes, suffix, variable):
        """``variable`` under ``<prefix>/<suffix>`` for each prefix (the first is canonical)."""
        self.add_names([f"{prefix}/{suffix}" for prefix in prefixes], variable)

    def add_names(self, names, variable, required=True):
        if variable is None:
            return
        if names[0] in self.targets:
            raise AssertionError(f"two weights map to {names[0]}")
        self.targets[names[0]] = Target(variable, aliases=tuple(names[1:]), required=required)

    def kernel_bias(self, prefixes, scope, layer):
        """ops.py ``dense``/``conv2d``/``conv_pool2d``/``upsample_conv2d``/``deconv2d`` under ``scope``."""
        self.add(prefixes, f"{scope}/kernel", layer.kernel)
        self.add(prefixes, f"{scope}/bias", getattr(layer, "bias", None))

    def norm(self, prefixes, scope, layer):
        """Instance norm (default scope ``InstanceNorm``) or contrib layer norm (``LayerNorm``)."""
        if layer is None:
            return
        default = {InstanceNormalization: "InstanceNorm", LayerNormalization: "LayerNorm"}[type(layer)]
        self.named_norm(prefixes, f"{scope}/{default}", layer)

    def named_norm(self, prefixes, scope, layer):
        self.add(prefixes, f"{scope}/gamma", layer.gamma)
        self.add(prefixes, f"{scope}/beta", layer.beta)

    def vector_rnn(self, prefixes, scope, cell):
        """TF1 ``LSTMCell``/``BasicLSTMCell`` (``basic_lstm_cell``) or ``GRUCell`` (``gru_cell``)."""
        if isinstance(cell, BasicLSTMCell):
            self.kernel_bias(prefixes, f"{scope}/basic_lstm_cell", cell)
        elif isinstance(cell, BasicGRUCell):
            for part in ("gates", "candidate"):
                self.add(prefixes, f"{scope}/gru_cell/{part}/kernel", getattr(cell, f"{part}_kernel"))
                self.add(prefixes, f"{scope}/gru_cell/{part}/bias", getattr(cell, f"{part}_bias"))
        else:
            raise ConversionError(f"no TF1 names known for {type(cell).__name__}")

    def conv_rnn(self, prefixes, scope, cell):
        """rnn_ops.py ``BasicConv2DLSTMCell`` / ``Conv2DGRUCell`` under ``scope``."""
        if isinstance(cell, BasicConv2DLSTMCell):
            cell_prefixes = [f"{p}/{scope}/{name}" for name in CONV_LSTM_SCOPES for p in prefixes]
            self.add(cell_prefixes, "kernel", cell.kernel)
            self.add(cell_prefixes, "bias", cell.bias)
            self.add(cell_prefixes, "weights", cell.non_spatial_kernel)
            for gates in ("input_transform_forget_output", "input", "transform", "forget", "output"):
                norm = getattr(cell, f"norm_{gates}", None)
                if norm is not None:
                    self.named_norm(cell_prefixes, gates, norm)
            if cell.state_norm is not None:
                self.named_norm(cell_prefixes, "state", cell.state_norm)
        elif isinstance(cell, Conv2DGRUCell):
            cell_prefixes = [f"{p}/{scope}/{name}" for name in CONV_GRU_SCOPES for p in prefixes]
            for part, norms in (("gates", ("reset_update", "reset", "update")), ("candidate", ("state",))):
                self.add(cell_prefixes, f"{part}/kernel", getattr(cell, f"{part}_kernel"))
                self.add(cell_prefixes, f"{part}/bias", getattr(cell, f"{part}_bias"))
                self.add(cell_prefixes, f"{part}/weights", getattr(cell, f"{part}_weights"))
                for gates in norms:
                    norm = getattr(cell, f"norm_{gates}", None)
                    if norm is not None:
                        self.named_norm(cell_prefixes, f"{part}/{gates}", norm)
        else:
            raise ConversionError(f"no TF1 names known for {type(cell).__name__}")


def _op_scope(layer):
    """The ops.py function (and so the variable scope) a layer stands for."""
    for layer_type, scope in ((ConvPool2D, "conv_pool2d"), (UpsampleConv2D, "upsample_conv2d"),
                              (Deconv2D, "deconv2d"), (Conv2D, "conv2d"), (keras.layers.Conv2D, "conv2d"),
                              (keras.layers.Dense, "dense")):
        if isinstance(layer, layer_type):
            return scope
    raise ConversionError(f"no TF1 scope known for layer {layer.name} ({type(layer).__name__})")


def _conditioned_conv(variables, prefixes, scope, layer):
    """``_maybe_tile_concat_layer``: the conv, plus a bias-free ``dense`` when sa_z is not tiled."""
    variables.kernel_bias(prefixes, f"{scope}/{_op_scope(layer.conv)}", layer.conv)
    if layer.dense is not None:
        variables.add(prefixes, f"{scope}/dense/kernel", layer.dense.kernel)


def _cell_variables(variables, cell, hp):
    """savp_model.py ``SAVPCell``: lstm_z, the U-Net h<i> / lstm_h<i>, the heads."""
    prefixes = CELL_SCOPES
    if cell.uses_rnn_z:
        if hp.ablation_rnn:
            variables.kernel_bias(prefixes, "fc_z/dense", cell.fc_z)
        else:
            variables.vector_rnn(prefixes, f"{hp.rnn}_z", cell.rnn_z)
    for i, spec in enumerate(cell.unet_specs):
        _conditioned_conv(variables, prefixes, f"h{i}", cell._layer(spec["conv"]))
        variables.norm(prefixes, f"h{i}", cell._layer(spec["norm"]))
        if spec["rnn"] is None:
            continue
        rnn_scope = spec["rnn"]  # the attribute is named after the original's scope (lstm_h<i>, conv_h<i>)
        if hp.ablation_rnn:
            _conditioned_conv(variables, prefixes, rnn_scope, cell._layer(rnn_scope))
        else:
            variables.conv_rnn(prefixes, rnn_scope, cell._layer(rnn_scope))
        # ablation_rnn's norm, or ablation_conv_rnn_norm's norm of the conv-RNN output, in the same scope
        variables.norm(prefixes, rnn_scope, cell._layer(spec["rnn_norm"]))
    for attribute in ("dna_hidden", "flow_hidden", "scratch_hidden", "masks_hidden"):
        head = getattr(cell, attribute, None)  # h<top>_dna_kernel, h<top>_flow, h<top>_scratch, h<top>_masks
        if head is not None:
            variables.kernel_bias(prefixes, f"{head}/conv2d", getattr(cell, head))
            variables.norm(prefixes, head, getattr(cell, f"{head}_norm", None))
    for attribute in ("cdna_kernels", "dna_kernels", "flows", "scratch_image", "masks", "state_pred"):
        layer = getattr(cell, attribute, None)
        if layer is not None:
            variables.kernel_bias(prefixes, f"{attribute}/{_op_scope(layer)}", layer)
    for i in range(cell.num_learned_initial_states):
        # learn_initial_state: created in SAVPCell.__init__, i.e. directly under generator/
        variables.add(["generator"], f"initial_state_{i}/initial_state", getattr(cell, f"initial_state_{i}"))


def _latent_network_variables(variables, prefix, network, hp, dense, rnn):
    """``posterior_fn`` / ``prior_fn``: networks.encoder layer_<k>, [layer_<n+1> dense, rnn], z heads."""
    prefixes = [prefix]
    encoder = network.conv_encoder
    for k in range(1, encoder.n_layers + 1):
        variables.kernel_bias(prefixes, f"layer_{k}/conv2d", getattr(encoder, f"layer_{k}"))
        variables.norm(prefixes, f"layer_{k}", getattr(encoder, f"layer_{k}_norm", None))
    if dense is not None:
        variables.kernel_bias(prefixes, f"layer_{encoder.n_layers + 1}/dense", dense)
    if rnn is not None:
        # tf.contrib.rnn cell unrolled by dynamic_rnn (scope "rnn") inside the scope named after hparams.rnn
        variables.vector_rnn(prefixes, f"{hp.rnn}/rnn", rnn)
    variables.kernel_bias(prefixes, "z_mu/dense", network.heads.z_mu)
    variables.kernel_bias(prefixes, "z_log_sigma_sq/dense", network.heads.z_log_sigma_sq)


def _discriminator_names(vae_gan, kind, layer, op, weight):
    """Canonical (HEAD) name of one discriminator weight, then the names earlier code gave it.

    HEAD (networks.py): ``discriminator[/encoder]/video/sn_conv0_0/conv3d/{kernel,u}`` with the conv3d bias
    outside the op's scope.  2018 code (spectral_norm_model.py): ``discriminator/video_sn_conv0_0/...``, the
    VAE-GAN copy under ``discriminator_encoder/`` (April) or ``discriminator/encoder/`` (later), the conv3d bias
    inside the op's scope until 2018-04-19 and outside after.
    """
    scope = f"discriminator/{'encoder/' if vae_gan else ''}{DISCRIMINATOR_SCOPES[kind]}"
    outside = weight == "bias" and op == "conv3d"
    names = [f"{scope}/{layer}/{weight}" if outside else f"{scope}/{layer}/{op}/{weight}"]
    if kind in ("video_sn", "image_sn"):  # images_sn came later, with the HEAD names
        old_prefixes = ("discriminator_encoder", "discriminator/encoder") if vae_gan else ("discriminator",)
        old_layer = f"{kind[:-len('_sn')]}_{layer}"  # video_sn_conv0_0, image_sn_fc4
        for prefix in old_prefixes:
            names.append(f"{prefix}/{old_layer}/{op}/{weight}")
            if outside:
                names.append(f"{prefix}/{old_layer}/{weight}")
    return names


def _discriminator_variables(variables, model):
    """networks.py ``video_sn_discriminator`` / ``image_sn_discriminator`` of both paths, with ``u``."""
    done = set()
    for vae_gan, names in ((False, model.discriminator_names), (True, model.discriminator_enc_names)):
        for kind, attribute in names.items():
            if attribute in done:  # use_same_discriminator: one set of weights
                continue
            done.add(attribute)
            discriminator = getattr(model, attribute)
            op = "conv3d" if discriminator.video else "conv2d"
            layers = [(name, getattr(discriminator, name), op) for name in discriminator.conv_names]
            layers.append(("sn_fc4", discriminator.sn_fc4, "dense"))
            for name, layer, layer_op in layers:
                for weight in ("kernel", "u", "bias"):
                    variables.add_names(_discriminator_names(vae_gan, kind, name, layer_op, weight),
                                        getattr(layer, weight))


def original_variable_names(model):
    """``{original TF1 variable name: Target}`` for every weight of a built SAVP model.

    Raises ConversionError naming any model weight that has no original name.
    """
    if model.cell is None:
        raise ValueError("build the model (build_from_batch) before mapping its variables")
    hp = model.hparams
    variables = _VariableMap()
    _cell_variables(variables, model.cell, hp)
    if model.encoder is not None:
        _latent_network_variables(variables, "generator/encoder", model.encoder, hp,
                                  getattr(model.encoder, "e_dense", None), getattr(model.encoder, "e_rnn", None))
    if model.prior is not None:
        _latent_network_variables(variables, "generator/prior", model.prior, hp, model.prior.dense, model.prior.rnn)
    _discriminator_variables(variables, model)
    variables.add_names(["global_step"], model.global_step, required=False)
    mapped = {id(target.variable) for target in variables.targets.values()}
    unmapped = [weight.path for weight in model.weights if id(weight) not in mapped]
    if unmapped:
        raise ConversionError(f"no original variable name known for {len(unmapped)} model weight(s): {unmapped[:10]}")
    return variables.targets


# -- conversion -----------------------------------------------------------------------------------


def build_model(hparams, image_shape, action_dim=0, state_dim=0):
    """The SAVP model with every weight created for frames of ``image_shape`` (and actions/states)."""
    model = SAVPVideoPredictionModel(hparams=hparams)
    length = model.sequence_length
    batch = {"images": tf.zeros([1, length] + list(image_shape))}
    if action_dim:
        batch["actions"] = tf.zeros([1, length - 1, action_dim])
    if state_dim:
        batch["states"] = tf.zeros([1, length, state_dim])
    model.build_from_batch(batch)
    return model


def _action_state_dims(shapes, dataset_hparams):
    """(action_dim, state_dim) from the ``state_pred`` dense kernel ``[A + S, S]`` when use_state."""
    if not dataset_hparams.get("use_state"):
        return 0, 0
    for prefix in CELL_SCOPES:
        shape = shapes.get(f"{prefix}/state_pred/dense/kernel")
        if shape is not None:
            return int(shape[0] - shape[1]), int(shape[1])
    raise ConversionError("dataset_hparams.json has use_state=True but the checkpoint has no "
                          f"{CELL_SCOPES[0]}/state_pred/dense/kernel to size the actions and states")


def match_record_channels(run, image_shape, notes):
    """``run`` with ``num_channels=3`` in its dataset hparams when an RGB model meets grey records.

    The 2018 KTH models were trained on RGB frames (the original's preprocessing kept 3 channels
    before Nov 2018) while ``kth`` records hold one; grey datasets read them as 3 identical
    channels (``GreyChannelsMixin``), recorded in the converted run directory.  Appends a note.
    """
    dataset_name = run.dataset_name
    stored = ORIGINAL_IMAGE_SHAPES.get(dataset_name, (None, None, image_shape[-1]))[-1]
    if image_shape[-1] == stored:
        return run
    note = (f"the model was trained on {image_shape[-1]}-channel frames where {dataset_name!r} records hold "
            f"{stored} (e.g. KTH before the original's Nov 2018 preprocessing, which kept RGB)")
    if _accepts_num_channels(dataset_name) and image_shape[-1] == 3:
        run = run._replace(dataset_hparams=dict(run.dataset_hparams, num_channels=3))
        note += "; the converted run reads them with num_channels=3 (the grey channel repeated)"
    else:
        note += "; its input records need that many channels"
    notes.append(note)
    return run


def _accepts_num_channels(dataset_name):
    from video_prediction.datasets import available_datasets, get_dataset_class

    return dataset_name in available_datasets() and "num_channels" in get_dataset_class(dataset_name).default_hparams()


def _dataset_hparams_for(dataset_name, dataset_hparams, notes):
    """The original's dataset hparams, restricted to what our dataset class accepts (each drop noted)."""
    from video_prediction.datasets import available_datasets, get_dataset_class

    if dataset_name not in available_datasets():
        notes.append(f"dataset {dataset_name!r} is not registered here; its dataset_hparams are kept as they are")
        return dict(dataset_hparams)
    valid = get_dataset_class(dataset_name).default_hparams()
    kept = {}
    for key, value in dataset_hparams.items():
        if key in valid:
            kept[key] = value
        else:
            notes.append(f"dataset hparam {key}={value!r} dropped ({dataset_name!r} has no such hparam)")
    return kept


class OriginalRun(NamedTuple):
    """An original TF1 run opened for conversion (what every converter of the original's runs reads)."""

    prefix: str
    options: dict
    dataset_name: str  # our registry name for options.json's dataset
    dataset_hparams: dict  # the original's
    model_hparams: dict  # the original's, context_frames/sequence_length taken from the dataset when unset
    reader: object  # tf.train.load_checkpoint
    shapes: dict  # {variable name: shape}


def open_original_run(checkpoint):
    """Find the checkpoint (directory or prefix), read its JSON files and open it by name."""
    prefix = find_original_checkpoint(checkpoint)
    options, dataset_hparams, model_hparams = read_original_run(prefix)
    model_hparams = dict(model_hparams)
    for key in ("context_frames", "sequence_length"):
        if model_hparams.get(key, 0) <= 0 and key in dataset_hparams:
            model_hparams[key] = dataset_hparams[key]
    original_dataset = options.get("dataset") or "bair"
    reader, shapes = open_checkpoint(prefix)
    return OriginalRun(prefix, options, DATASET_NAMES.get(original_dataset, original_dataset), dataset_hparams,
                       model_hparams, reader, shapes)


def write_converted_run(run, model, model_name, targets, image_shape, output_dir, notes=()):
    """Assign ``targets`` from ``run``'s checkpoint (optimizer slots and the metrics' VGG16 skipped), log the
    notes, and write the run directory ``output_dir`` (checkpoint numbered by the original's step)."""
    hint = (f" (converting {run.prefix} into a {model_name} model for frames of shape {tuple(image_shape)}: is "
            "model_hparams.json the one it was trained with? another frame size: --image_shape)")
    assign_by_name(targets, run.shapes, run.reader.get_tensor, hint=hint,
                   ignore=lambda name: bool(OPTIMIZER_VARIABLE.search(name) or METRIC_VARIABLE.match(name)))
    notes = list(notes)
    metric_variables = [name for name in run.shapes if METRIC_VARIABLE.match(name)]
    if metric_variables:
        notes.append(f"{len(metric_variables)} vgg/* variables skipped (the frozen VGG16 of the original's "
                     "vgg_csim/vgg_cdist metrics, not part of the model)")
    dataset_hparams = _dataset_hparams_for(run.dataset_name, run.dataset_hparams, notes)
    for note in notes:
        logger.warning("%s: %s", os.path.basename(run.prefix), note)
    step = int(model.global_step.numpy())
    options = dict(dataset=run.dataset_name, model=model_name, input_dir=None, image_shape=list(image_shape),
                   converted_from=os.path.abspath(run.prefix), original_options=run.options)
    write_run_directory(output_dir, model, options, dataset_hparams, checkpoint_number=max(step, 1))


def convert_checkpoint(checkpoint, output_dir, image_shape=None):
    """Convert the original run at ``checkpoint`` (directory or prefix) into a run directory ``output_dir``.

    ``image_shape`` (H, W, C) overrides the frame size derived from the
    dataset's name and crop/scale hparams.  Returns the converted model.
    """
    run = open_original_run(checkpoint)
    hparams, notes = translate_hparams(run.model_hparams)
    dataset_name = run.dataset_name
    if image_shape is None:
        image_shape = original_image_shape(dataset_name, run.dataset_hparams, run.shapes)
        run = match_record_channels(run, image_shape, notes)
    image_shape = tuple(int(d) for d in image_shape)
    action_dim, state_dim = _action_state_dims(run.shapes, run.dataset_hparams)
    try:
        model = build_model(hparams, image_shape, action_dim, state_dim)
    except ValueError as e:
        raise ConversionError(f"{os.path.join(os.path.dirname(run.prefix), 'model_hparams.json')}: {e}") from None
    write_converted_run(run, model, "savp", original_variable_names(model), image_shape, output_dir, notes)
    return model
