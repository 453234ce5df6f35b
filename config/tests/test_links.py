"""config.links: {% url %} and reverse_cached answer what Django's reverse() answers, remembered
only where the answer cannot change (plain arguments, the same script prefix and urlconf)."""

import pytest
from django.template import Context, Template, engines
from django.urls import NoReverseMatch, reverse, set_script_prefix

from config.links import CachedURLNode, _reversed, reverse_cached


@pytest.fixture(autouse=True)
def _clean_prefix():
    _reversed.cache_clear()
    set_script_prefix("/")
    yield
    set_script_prefix("/")
    _reversed.cache_clear()


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("desk:home", (), {}),
        ("desk:queue", (), {"queue_id": 7}),
        ("desk:queue", (7,), None),
        ("desk:queue_claim", (), {"queue_id": 7, "alert_id": 12345}),
        ("accounts:security", (), None),
    ],
)
def test_it_answers_what_reverse_answers(name, args, kwargs):
    expected = reverse(name, args=args, kwargs=kwargs)
    assert reverse_cached(name, args=args, kwargs=kwargs) == expected
    assert reverse_cached(name, args=args, kwargs=kwargs) == expected  # and again, from the cache


def test_another_script_prefix_is_another_answer():
    plain = reverse_cached("desk:queue", kwargs={"queue_id": 7})
    set_script_prefix("/desk-a/")
    assert (
        reverse_cached("desk:queue", kwargs={"queue_id": 7})
        == "/desk-a" + plain
        == reverse("desk:queue", kwargs={"queue_id": 7})
    )


def test_arguments_that_are_not_plain_are_reversed_every_time():
    class Id:
        def __init__(self, n):
            self.n = n

        def __str__(self):
            return str(self.n)

    one = Id(3)
    assert reverse_cached("desk:queue", kwargs={"queue_id": one}) == "/queues/3/"
    one.n = 4  # what str() says changed: a remembered answer would be wrong
    assert reverse_cached("desk:queue", kwargs={"queue_id": one}) == "/queues/4/"
    assert _reversed.cache_info().currsize == 0


def test_an_unknown_name_raises_as_reverse_does():
    with pytest.raises(NoReverseMatch):
        reverse_cached("desk:no_such_view")
    with pytest.raises(NoReverseMatch):
        reverse_cached("desk:queue", kwargs={"queue_id": "x"})  # the path wants an int


def test_the_url_tag_is_the_cached_one_and_renders_as_djangos():
    template = engines["django"].from_string(
        "{% url 'desk:queue' queue_id=q %}|{% url 'desk:home' as home %}{{ home }}|"
        "{% url 'desk:nope' as missing %}[{{ missing }}]|{% url name queue_id=q %}"
    )
    assert any(isinstance(node, CachedURLNode) for node in template.template.nodelist)
    assert template.render({"q": 5, "name": "desk:queue_rows"}) == "/queues/5/|/|[]|/queues/5/rows/"
    with pytest.raises(NoReverseMatch):
        engines["django"].from_string("{% url 'desk:nope' %}").render({})


def test_the_url_tag_escapes_as_djangos_does():
    """reverse() keeps & and ' in a path (they are allowed there): the tag escapes them under
    autoescape, as Django's does, and not with it off or into a variable."""
    context = {"t": "a&b'c", "i": "1"}
    source = (
        "{% url 'audit:target_history' target_type=t target_id=i %}|"
        "{% autoescape off %}{% url 'audit:target_history' target_type=t target_id=i %}{% endautoescape %}"
    )
    raw = reverse("audit:target_history", kwargs={"target_type": "a&b'c", "target_id": "1"})
    assert "&" in raw and "'" in raw
    escaped = raw.replace("&", "&amp;").replace("'", "&#x27;")
    assert engines["django"].from_string(source).render(context) == f"{escaped}|{raw}"
    assert Template(source).render(Context(context)) == f"{escaped}|{raw}"  # an Engine's own templates too
