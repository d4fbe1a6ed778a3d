"""geocrop's version, in a leaf module: any layer may import it (the package root, the facade over
`geocrop.api`, only re-exports it).
"""

__version__ = "0.1.0"
