"""The kernel: calendar months and the protocol and finance arithmetic, pure numpy.

The bottom layer of the package (it imports nothing else from ``optimizer``): the instance
needs months and, for its scenario generator, hashprice; everything above needs both.
"""
