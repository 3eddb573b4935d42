"""TensorFlow twins of the method's steps for the serving graph: window, cubic upsampling, flow-guided interpolation, consistency."""
