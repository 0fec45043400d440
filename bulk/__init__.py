"""Bulk segmentation on Ray Data: the server's pipeline in Ray actors over folders of any size (`segserving bulk`)."""
