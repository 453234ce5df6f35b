"""URLs reversed once per process, not once per use.

Django's reverse() costs 70-120 µs a call here (it walks the resolver's namespaces and matches the
candidate patterns again each time), and a desk page reverses a dozen: about a tenth of the queue
page. A URL depends only on the view's name, its arguments, the current app, the urlconf and the
script prefix, so `reverse_cached` keeps each answer, keyed by all of them; arguments that are
not plain ints and strings (which could say something else as str() tomorrow) go to reverse()
every time. The template library here is a builtin (settings.TEMPLATES): its {% url %} is
Django's own tag, reversing through the cache."""

import functools

from django import template
from django.template import defaulttags
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

register = template.Library()

_PLAIN = (int, str)


@functools.lru_cache(maxsize=8192)
def _reversed(prefix: str, urlconf, viewname: str, args: tuple, kwargs: tuple, current_app) -> str:
    del prefix  # part of the key: reverse() reads the current one itself
    return reverse(viewname, urlconf=urlconf, args=args, kwargs=dict(kwargs), current_app=current_app)


def reverse_cached(viewname: str, args=(), kwargs=None, current_app=None) -> str:
    """reverse(viewname, args=..., kwargs=..., current_app=...), remembered (see the module)."""
    kwargs = kwargs or {}
    values = (*args, *kwargs.values())
    if not isinstance(viewname, str) or not all(type(v) in _PLAIN for v in values):
        return reverse(viewname, args=args, kwargs=kwargs, current_app=current_app)
    return _reversed(
        get_script_prefix(), get_urlconf(), viewname, tuple(args), tuple(sorted(kwargs.items())), current_app
    )


class CachedURLNode(defaulttags.URLNode):
    """Django's {% url %} node (URLNode.render as of Django 5.2, line for line) reversing through
    reverse_cached."""

    def render(self, context):
        args = [arg.resolve(context) for arg in self.args]
        kwargs = {k: v.resolve(context) for k, v in self.kwargs.items()}
        view_name = self.view_name.resolve(context)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = reverse_cached(view_name, args=args, kwargs=kwargs, current_app=current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    """{% url %}, as Django's tag parses it, rendered by CachedURLNode."""
    node = defaulttags.url(parser, token)
    return CachedURLNode(node.view_name, node.args, node.kwargs, node.asvar)
