"""The console: the browser pages for site staff, landlords and district officers (docs/console.md).

Server-rendered pages over the same service functions the API calls, so a page can never show or
change more than the caller's API key could. Beside the API in the layers: it uses the domains, and
only ``idsvc.app`` mounts it.
"""
