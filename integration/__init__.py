"""Integration tests and tooling that need root: a network-namespace lab running real BIRD 1.6.8.

``integration.lab`` builds the seed topology (nodes on one bridge, a Calico-style pod behind
each node) in namespaces with a per-run prefix; the tests here drive it through pytest fixtures
(``conftest.py``), ``lab_up.py`` brings a lab up for humans (``make lab``).
"""
