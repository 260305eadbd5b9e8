"""Trained Keras classifier -> full-integer int8 TFLite for the edge, with its metadata and a parity report.

Workstation only (needs TensorFlow). `python -m convert --help` lists the options.
"""
