"""Annotation for ``speaker decode``: what each field of a BGP message means, and where.

Modules: ``tables`` (meanings and RFC sections, keyed by the codec's enums), ``layout`` (byte
ranges of every field, for ``--bytes`` and exact attribute flags), ``session`` (the OPEN
exchange of each TCP stream and the context it negotiates), ``tree`` (the indented text a
student reads), ``explain`` (messages as annotated trees) and ``records`` (messages as JSON).
"""
