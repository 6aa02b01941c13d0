"""The merchant admin's services: sign-in links, and (per section) what the pages show and
change. HTTP lives in ``plugin_server/web/admin*.py``."""
