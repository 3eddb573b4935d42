"""Volumes in and out: NIfTI, DICOM series (read and write), stored types, and outputs written safely."""
