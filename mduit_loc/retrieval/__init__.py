"""Retrieval and localization: global descriptors (``descriptor_models``, ``netvlad``), ``extract``,
the FAISS index files (``faiss_index``) and their building (``indexing``, with ``translated_db``),
``search``, ``localize`` with pose estimation and PnP ``refine`` (geometry in ``scene3d``; the map's
3D structure is read by ``mduit_loc.datasets.structure``). Other packages call ``api``."""
