"""Training-time image augmentation: padded random crop, flip and cutout.

The CIFAR recipe that P1, P2 and P4 inherit from DARTS (DESIGN `data`):
pad and randomly crop back, flip left-right, and optionally cut out a
square. Images are float32 HWC in [-1, 1]. Every op is stateless and takes
an explicit seed (a shape-[2] int tensor) so a seeded input pipeline draws
the same augmentations run after run.
"""

import tensorflow as tf

#: Pixel value of black in [-1, 1]; padding uses it so the padded border
#: looks like zero-padding in raw pixel space, as in the DARTS recipe.
BLACK = -1.0


def crop_padding(height):
    """Padding for the random crop: 4 px at 32 px (CIFAR), scaled as H // 8."""
    return max(1, height // 8)


def random_crop(image, seed):
    """Pad each side by `crop_padding(H)` pixels of black, crop back to H x W."""
    height, width, channels = image.shape
    pad = crop_padding(height)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], constant_values=BLACK)
    return tf.image.stateless_random_crop(padded, [height, width, channels], seed)


def random_flip(image, seed):
    """Flip left-right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def cutout(image, size, seed):
    """Zero a size x size square centred on a uniformly drawn pixel.

    As in DeVries & Taylor (2017) and DARTS, the square is clipped at the
    image border, so near an edge only part of it is zeroed. Zero is the
    mid-grey of [-1, 1], the value DARTS's cutout writes after normalising.
    """
    height, width = image.shape[0], image.shape[1]
    fraction = tf.random.stateless_uniform([2], seed)
    centre = tf.cast(fraction * [height, width], tf.int32)
    top, left = centre[0] - size // 2, centre[1] - size // 2
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return image * tf.cast(~inside, image.dtype)[:, :, None]


def make_augment(flip=True, cutout_size=0):
    """Return `augment(image, seed) -> image` applying crop, then flip, then cutout.

    `seed` is one int64 scalar per example (e.g. from `tf.data.Dataset.random`);
    each op derives its own stateless seed from it.
    """
    if cutout_size < 0:
        raise ValueError(f"cutout must be >= 0 pixels, got {cutout_size}; use 0 to disable it.")

    def augment(image, seed):
        seeds = tf.stack([tf.fill([3], seed), tf.range(3, dtype=tf.int64)], axis=1)
        image = random_crop(image, seeds[0])
        if flip:
            image = random_flip(image, seeds[1])
        if cutout_size > 0:
            image = cutout(image, cutout_size, seeds[2])
        return image

    return augment
