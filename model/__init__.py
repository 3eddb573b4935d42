"""Keras 3 networks, losses, the SOUP-GAN model and its training loop (built on `pipeline`)."""
