"""rsproxy's mitmproxy addons, one per module; ``rsproxy.py`` assembles them (DESIGN §2).

Installed as ``rsproxy.addons``. Load them into your own mitmproxy with
``mitmdump -s addons/rsproxy.py --mode reverse:http://localhost:3000``.
"""
