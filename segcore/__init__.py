"""SegServing's serving core: model config, pre/post-processing, engines and the model repository.

Nothing in this package knows about HTTP, gRPC or any other transport.
"""

import warnings

# paddle's import prints this for a compiler cache it never uses at inference time.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
