"""Training data: the record schema, tf.data input, patch pairs (Beam's and drawn on the fly), splits, synthetic volumes, augmentation."""
