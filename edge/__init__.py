"""maskwatch edge daemon: camera -> faces -> classifier -> decision -> alarm.

Nothing under edge/ may import TensorFlow or Keras: it runs on a Raspberry Pi with the LiteRT runtime.
"""

__version__ = "0.1.0"
