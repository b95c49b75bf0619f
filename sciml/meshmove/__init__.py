"""Mesh movement (home of DMM, the data-free neural mesh mover): monitor functions, the Monge-Ampere
mover task and ``move(field, mover)``. The classical Monge-Ampere solver goes to
:mod:`sciml.numerics`. Empty until the mesh mover lands.
"""
