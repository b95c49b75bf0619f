"""Pictures of fields: PyVista conversion, off-screen plots and VTK export (:mod:`sciml.viz.render`)."""
