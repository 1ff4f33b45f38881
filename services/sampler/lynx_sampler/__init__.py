"""Sampler service: turns a dispersion spec into reproducible parameter sets."""
