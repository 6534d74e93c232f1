"""Servo buses and robots: vendor protocols (one module each), calibration, safety."""
