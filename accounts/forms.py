from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

# One message for every kind of sign-in failure, so that none tells whether a username exists.
SIGN_IN_FAILED = "The username or password is not right, or this account cannot sign in. Try again."


class LoginForm(AuthenticationForm):
    error_messages = {"invalid_login": SIGN_IN_FAILED, "inactive": SIGN_IN_FAILED}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].replace(" ", "").replace("-", "").strip()


class ReauthForm(TokenForm):
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    field_order = ["password", "token"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].widget.attrs.pop("autofocus", None)


def form_errors_add(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form that fed it: on the named field where the form
    has one, else as a form-wide error."""
    for name, items in error.message_dict.items():
        for item in items:
            form.add_error(name if name in form.fields else None, item)
