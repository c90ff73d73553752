"""Steward's admin site: the login form that tells a locked user so, and the second factor
every admin page asks for when the user owes one (governance.mfa)."""

from functools import update_wrapper

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from . import mfa
from .auth import lock_message, retry_after


class LockoutAwareAuthenticationForm(AdminAuthenticationForm):
    """The admin login tells a locked user so, and for how long."""

    def get_invalid_login_error(self):
        wait = retry_after(self.request, self.cleaned_data.get("username") or "")
        if wait:
            return ValidationError(lock_message(wait), code="locked")
        return super().get_invalid_login_error()


class StewardAdminSite(admin.AdminSite):
    login_form = LockoutAwareAuthenticationForm

    def admin_view(self, view, cacheable=False):
        """Every admin page, once signed in with a password, first asks for the second
        factor the user owes; logging out is always possible."""
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            logout = reverse("admin:logout", current_app=self.name)
            if request.path != logout and mfa.pending(request):
                mfa_url = reverse("admin:mfa", current_app=self.name)
                return redirect_to_login(request.get_full_path(), mfa_url)
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def get_urls(self):
        mfa_view = super().admin_view(self.mfa_view)  # signed in, second factor or not
        return [path("mfa/", mfa_view, name="mfa"), *super().get_urls()]

    def mfa_view(self, request):
        """Enrol an authenticator, give a code for this session, or (once verified) get
        new recovery codes."""
        user, code = request.user, request.POST.get("code", "")
        context = {
            **self.each_context(request),
            "title": "Two-factor sign-in",
            "next": self._next(request),
            "required": mfa.required_for(user),
            "available_apps": [],
            "is_nav_sidebar_enabled": False,
        }
        if mfa.authenticator(user) is None:
            device = mfa.new_authenticator(user)
            if request.method == "POST":
                codes = mfa.confirm(request, device, code)
                if codes is not None:
                    return self._render(request, context, "codes", codes=codes)
                context["error"] = (
                    "That code is not valid; check your device's clock and try again."
                )
            return self._render(
                request,
                context,
                "enrol",
                qr=mark_safe(mfa.qr_svg(device)),  # noqa: S308  (segno's own SVG)
                secret=mfa.secret_text(device),
            )
        if not user.is_verified():
            if request.method == "POST":
                error = mfa.verify(request, code)
                if error is None:
                    return redirect(context["next"])
                context["error"] = error
            return self._render(request, context, "verify")
        if request.method == "POST" and "recovery" in request.POST:
            return self._render(request, context, "codes", codes=mfa.new_recovery_codes(user))
        return self._render(request, context, "manage")

    def _next(self, request):
        target = request.POST.get("next") or request.GET.get("next") or ""
        allowed = url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return target if allowed and target else reverse("admin:index", current_app=self.name)

    def _render(self, request, context, step, **extra):
        return TemplateResponse(request, "admin/mfa.html", {**context, "step": step, **extra})
