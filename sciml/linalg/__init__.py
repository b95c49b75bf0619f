"""Learned and classical linear solvers (home of DCDM, the deep conjugate-direction method):
``solve(A, b, method=...)``, its method objects, Krylov baselines and Lanczos. Empty until DCDM lands.
"""
