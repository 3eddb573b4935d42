"""The method in NumPy/SciPy: degradation, cubic and flow-guided slice interpolation, data consistency, normalisation, geometry, label maps."""
