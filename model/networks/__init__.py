"""The Keras 3 networks: the scale-conditioned convolution (paper Eq. 3), blocks, the generator, the discriminator and the VGG19 perceptual network."""
