"""speaker: a pure-Python BGP-4 speaker for a Calico-style iBGP full mesh.

It peers with BIRD over TCP 179 (add-paths, graceful restart), and programs the routes it
learns into the Linux kernel the way BIRD's ``protocol kernel`` does.  See docs/architecture.md.
"""

__version__ = "0.1.0"
