"""The VGG-16 convolutional trunk (configuration D) in slim's layout, up to ``pool5``.

Thirteen 3x3 SAME convolutions with ReLU in five blocks (2x64, 2x128, 3x256, 3x512, 3x512),
each block followed by a 2x2 stride-2 max-pool; fc6-fc8 are not built (EPVA's encoder stops
at ``pool5``, specs/epva.md §3.1).  Variables carry slim's names
(``vgg_16/conv1/conv1_1/weights``...) through :meth:`VGG16Trunk.tf1_variables`, so slim's
ImageNet ``vgg_16.ckpt`` and the original's checkpoints load by name.  The input is whatever
the caller preprocessed (slim: RGB x 255-scale minus the channel means).
"""

import keras

from video_prediction.layers.peephole_lstm import track_as_attributes

#: (block, number of convs, channels) of VGG-16.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


class VGG16Trunk(keras.layers.Layer):
    """conv1_1 ... pool5 of VGG-16; kernels truncated-normal(0.01), zero biases (slim's ``vgg_arg_scope``).

    slim also registers an L2 weight decay of 5e-4 that the original never adds to a loss
    (specs/epva.md §3.1), so none is applied here.
    """

    def __init__(self, stddev=0.01, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.TruncatedNormal(stddev=stddev)
        self.convs = []
        for block, count, channels in VGG16_BLOCKS:
            for k in range(1, count + 1):
                self.convs.append(keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                                                      kernel_initializer=init, name=f"conv{block}_{k}"))
        self.pool = keras.layers.MaxPooling2D(2, 2, padding="valid")
        track_as_attributes(self, self.convs)

    def call(self, x):
        index = 0
        for _, count, _ in VGG16_BLOCKS:
            for _ in range(count):
                x = self.convs[index](x)
                index += 1
            x = self.pool(x)
        return x

    def tf1_variables(self, scope="vgg_16"):
        """``{slim name: variable}``, e.g. ``vgg_16/conv3/conv3_2/weights``."""
        names = {}
        for conv in self.convs:
            block = conv.name.split("_")[0]
            names[f"{scope}/{block}/{conv.name}/weights"] = conv.kernel
            names[f"{scope}/{block}/{conv.name}/biases"] = conv.bias
        return names


def vgg16_output_size(height, width):
    """Spatial size after the five 2x2 pools (floor at each, as 'VALID'; slim's max_pool2d default)."""
    for _ in range(5):
        height, width = height // 2, width // 2
    return height, width

