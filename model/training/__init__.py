"""Training: losses, the GAN's train_step, tf.data input, tf.distribute strategies, the TensorFlow and portable trainers, callbacks, and per-scan adaptation."""
