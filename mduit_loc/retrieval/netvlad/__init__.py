"""NetVLAD baseline: the layer, VGG-16 / light backbones, the official .mat loader, training by pose.

``load_netvlad(path, device)`` returns a ``NetVLADDescriptor`` from a ``train-netvlad`` run
directory or an official ``*_struct.mat``; see ``model`` and ``training``.
"""
from mduit_loc.retrieval.netvlad.layer import NetVLAD
from mduit_loc.retrieval.netvlad.model import NetVLADArchitecture, NetVLADDescriptor, build_netvlad, load_netvlad

__all__ = ["NetVLAD", "NetVLADArchitecture", "NetVLADDescriptor", "build_netvlad", "load_netvlad"]
