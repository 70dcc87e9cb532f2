"""Pages of identity: API keys, an organisation (members, projects), the audit log."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from simlab.accounts import services as account_services
from simlab.accounts.models import ROLE_RANK, Membership, Role, User
from simlab.accounts.selectors import (
    api_key_list,
    invitation_list,
    organization_list,
    role_in_organization,
)
from simlab.audit.selectors import audit_log_list
from simlab.core.actor import Actor, Source
from simlab.core.errors import NotFound, ValidationFailed
from simlab.projects import services as project_services
from simlab.projects.models import Project
from simlab.projects.selectors import project_get, project_list
from simlab.web.forms import ApiKeyForm, InvitationForm, InviteForm, ProjectForm
from simlab.web.views._common import attempt, page, page_actor, render_page, submit_form

AUDIT_PAGE = 100


# --- API keys -------------------------------------------------------------------------------
@page
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    """The user's keys (an admin's: the organisation's), and a new one, shown once."""
    actor = page_actor(request)
    organizations = [(o.pk, o.name) for o in organization_list(actor).order_by("name")]
    form = ApiKeyForm(organizations, request.POST if request.method == "POST" else None)
    created: dict[str, Any] | None = None
    status = 200

    def create() -> tuple[Any, str]:
        expires_on = form.cleaned_data["expires_on"]
        return account_services.api_key_create(
            actor,
            organization_id=form.cleaned_data["organization"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=(
                timezone.make_aware(datetime.combine(expires_on, time.max)) if expires_on else None
            ),
        )

    if request.method == "POST":
        made = submit_form(form, create)
        if made is None:
            status = 400
        else:
            created = {"key": made[0], "raw": made[1]}
            form = ApiKeyForm(organizations)
    keys = api_key_list(actor).order_by("-created_at")[:200]
    return render_page(
        request,
        "web/identity/api_keys.html",
        {"form": form, "created": created, "keys": keys, "nav": "keys"},
        actor=actor,
        status=status,
    )


@page
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    account_services.api_key_revoke(page_actor(request), key_id=key_id)
    messages.success(request, "The key is revoked: it no longer works anywhere.")
    return redirect("web-api-keys")


# --- an organisation ------------------------------------------------------------------------
def _role(actor: Actor, organization_id: int) -> Role:
    role = role_in_organization(actor, organization_id)
    if role is None:
        raise NotFound("No such organization.")
    return role


@page
def organizations(request: HttpRequest) -> HttpResponse:
    """The organisation of the current project (else the first one)."""
    actor = page_actor(request)
    first = organization_list(actor).order_by("name").first()
    if first is None:
        return redirect("home")
    return redirect("web-organization", organization_id=first.pk)


@page
def organization(request: HttpRequest, organization_id: int) -> HttpResponse:
    return _organization_page(request, organization_id)


def _organization_page(
    request: HttpRequest,
    organization_id: int,
    *,
    invite: InviteForm | None = None,
    invitation: InvitationForm | None = None,
    project_form: ProjectForm | None = None,
    renamed: tuple[int, ProjectForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The organisation page, with a refused form (and its errors) where one was posted:
    the invite, the new project, or one project's rename (`renamed`: its id and form)."""
    actor = page_actor(request)
    role = _role(actor, organization_id)
    the_organization = organization_list(actor).get(pk=organization_id)
    manages = ROLE_RANK[role] >= ROLE_RANK[Role.ADMIN]
    members = Membership.objects.filter(organization_id=organization_id).select_related("user")
    return render_page(
        request,
        "web/identity/organization.html",
        {
            "organization": the_organization,
            "role": role,
            "manages": manages,
            "can_create": ROLE_RANK[role] >= ROLE_RANK[Role.MEMBER],
            "members": members.order_by("user__username"),
            "roles": Role.choices,
            "projects": [
                (
                    project,
                    renamed[1] if renamed and renamed[0] == project.pk else _rename_form(project),
                )
                for project in project_list(actor, organization_id=organization_id).order_by("name")
            ],
            "invite": invite or InviteForm(),
            "invitation_form": invitation or InvitationForm(),
            "invitations": (
                invitation_list(actor, organization_id).filter(accepted_at__isnull=True)[:50]
                if manages
                else []
            ),
            "project_form": project_form or ProjectForm(),
            "nav": "organization",
        },
        actor=actor,
        status=status,
    )


def _rename_form(project: Project, data: Any = None) -> ProjectForm:
    """One project's rename form: its own field ids, one per project on the page."""
    initial = {"name": project.name, "description": project.description}
    return ProjectForm(data, prefix=f"project-{project.pk}", initial=initial)


def _find_user(who: str) -> User | None:
    who = who.strip()
    return User.objects.filter(Q(username=who) | Q(email__iexact=who)).order_by("pk").first()


@page
@require_POST
def member_invite(request: HttpRequest, organization_id: int) -> HttpResponse:
    actor = page_actor(request)
    form = InviteForm(request.POST)

    def add() -> User:
        user = _find_user(form.cleaned_data["who"])
        if user is None:
            unknown = "No SimLab user has that username or e-mail."
            raise ValidationFailed(unknown, details={"who": [unknown]})
        role = Role(form.cleaned_data["role"])
        account_services.membership_set(
            actor, organization_id=organization_id, user=user, role=role
        )
        return user

    user = submit_form(form, add)
    if user is None:
        return _organization_page(request, organization_id, invite=form, status=400)
    messages.success(request, f"{user.get_username()} is now a member.")
    return redirect("web-organization", organization_id=organization_id)


@page
@require_POST
def invitation_create(request: HttpRequest, organization_id: int) -> HttpResponse:
    """Invite an e-mail address; the sign-up link goes to it by e-mail."""
    actor = page_actor(request)
    form = InvitationForm(request.POST)
    invitation = submit_form(
        form,
        lambda: account_services.invitation_create(
            actor,
            organization_id=organization_id,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            site_url=request.build_absolute_uri("/"),
        ),
    )
    if invitation is None:
        return _organization_page(request, organization_id, invitation=form, status=400)
    messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("web-organization", organization_id=organization_id)


@page
@require_POST
def invitation_withdraw(
    request: HttpRequest, organization_id: int, invitation_id: int
) -> HttpResponse:
    """Withdraw an open invitation: its link stops working."""
    actor = page_actor(request)
    attempt(
        request,
        lambda: account_services.invitation_withdraw(
            actor, organization_id=organization_id, invitation_id=invitation_id
        ),
        "Invitation withdrawn.",
    )
    return redirect("web-organization", organization_id=organization_id)


@page
@require_POST
def member_change(request: HttpRequest, organization_id: int, user_id: int) -> HttpResponse:
    """A member's new role, or their removal (`remove` in the form)."""
    actor = page_actor(request)
    membership = Membership.objects.filter(organization_id=organization_id, user_id=user_id).first()
    _role(actor, organization_id)
    if membership is None:
        raise NotFound("No such member.")
    role = request.POST.get("role", "")
    if "remove" in request.POST:
        attempt(
            request,
            lambda: account_services.membership_remove(
                actor, organization_id=organization_id, user_id=user_id
            ),
            "Removed.",
        )
    elif role not in Role.values:
        messages.error(request, "Choose a role.")
    else:
        attempt(
            request,
            lambda: account_services.membership_set(
                actor, organization_id=organization_id, user=membership.user, role=Role(role)
            ),
            "Role changed.",
        )
    return redirect("web-organization", organization_id=organization_id)


@page
@require_POST
def project_new(request: HttpRequest, organization_id: int) -> HttpResponse:
    actor = page_actor(request)
    form = ProjectForm(request.POST)
    project = submit_form(
        form,
        lambda: project_services.project_create(
            actor,
            organization_id=organization_id,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
        ),
    )
    if project is None:
        return _organization_page(request, organization_id, project_form=form, status=400)
    messages.success(request, f"Project '{project.name}' created.")
    return redirect("web-project", project_id=project.pk)


@page
@require_POST
def project_change(request: HttpRequest, organization_id: int, project_id: int) -> HttpResponse:
    """Rename a project, or archive or restore it (`archive` / `restore` in the form)."""
    actor = page_actor(request)
    project = project_get(actor, project_id)
    if project.organization_id != organization_id:
        raise NotFound("No such project.")
    if "archive" in request.POST or "restore" in request.POST:
        archived = "archive" in request.POST
        attempt(
            request,
            lambda: project_services.project_archive(actor, project_id, archived=archived),
            f"'{project.name}' {'archived' if archived else 'restored'}.",
        )
        return redirect("web-organization", organization_id=organization_id)
    form = _rename_form(project, request.POST)
    saved = submit_form(
        form,
        lambda: project_services.project_update(
            actor,
            project_id,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
        ),
    )
    if saved is None:
        return _organization_page(request, organization_id, renamed=(project_id, form), status=400)
    messages.success(request, "Project saved.")
    return redirect("web-organization", organization_id=organization_id)


# --- the audit log --------------------------------------------------------------------------
@page
def audit_log(request: HttpRequest) -> HttpResponse:
    """Entries of the organisations the user manages, newest first, filtered."""
    actor = page_actor(request)
    entries = audit_log_list(actor).order_by("-created_at", "-id")
    query = request.GET
    if query.get("actor"):
        entries = entries.filter(actor_username=query["actor"].strip())
    if query.get("action"):
        entries = entries.filter(action__startswith=query["action"].strip())
    if query.get("source") in {source.value for source in Source}:
        entries = entries.filter(source=query["source"])
    if query.get("object"):
        kind, _, object_id = query["object"].strip().partition(":")
        entries = entries.filter(object_type__endswith=kind)
        if object_id:
            entries = entries.filter(object_id=object_id)
    return render_page(
        request,
        "web/identity/audit.html",
        {
            "entries": entries[:AUDIT_PAGE],
            "filters": query,
            "sources": [s.value for s in Source],
            "page_size": AUDIT_PAGE,
            "nav": "audit",
        },
        actor=actor,
    )
