"""Admin of DMN decisions: upload a .dmn file, read a decision table as a table, and evaluate it on given inputs."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.errors import WorkflowError

from .bpmn.decisions import decision_deploy, decision_evaluate
from .models import DecisionDefinition

EVALUATE_TEMPLATE = "admin/tasks/decision_evaluate.html"


class DecisionUploadForm(forms.Form):
    """A DMN file to deploy; the deploy service's refusals show beside the field."""

    dmn_file = forms.FileField(label="DMN file", help_text="A .dmn file from Camunda Modeler (DMN 1.1 to 1.3).")

    def clean_dmn_file(self):
        try:
            return self.cleaned_data["dmn_file"].read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None


def _input_value(text: str):
    """A typed input: JSON when it reads as JSON (42, true, "x", [1]), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class DecisionEvaluateForm(forms.Form):
    """One field per input expression of the decision; each value JSON (42, true, "gold") or plain text."""

    def __init__(self, *args, decision: DecisionDefinition, **kwargs):
        super().__init__(*args, **kwargs)
        self.names = []
        for number, column in enumerate(decision.table["inputs"]):
            name = f"input_{number}"
            self.names.append((name, column["expression"]))
            self.fields[name] = forms.CharField(
                label=f"{column['label']} ({column['expression']})", required=False, help_text="JSON or text"
            )

    def variables(self) -> dict:
        """The inputs as variables: an input expression that is a plain name takes the value under that name."""
        found = {}
        for name, expression in self.names:
            if expression.isidentifier() and self.cleaned_data.get(name, "") != "":
                found[expression] = _input_value(self.cleaned_data[name])
        return found


def decision_table_html(table: dict):
    """The decision table as an HTML table: inputs then outputs as columns, one row per rule."""
    inputs, outputs = table["inputs"], table["outputs"]
    head = format_html(
        "<tr><th>#</th>{}{}<th>Description</th></tr>",
        format_html_join(
            "", '<th class="dmn-input">{}<br><code>{}</code></th>', ((i["label"], i["expression"]) for i in inputs)
        ),
        format_html_join(
            "", '<th class="dmn-output">{}<br><code>{}</code></th>', ((o["label"], o["name"]) for o in outputs)
        ),
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td>{}{}<td>{}</td></tr>",
        (
            (
                number,
                format_html_join("", "<td><code>{}</code></td>", ((entry or "-",) for entry in rule["inputs"])),
                format_html_join("", "<td><code>{}</code></td>", ((entry,) for entry in rule["outputs"])),
                rule["description"],
            )
            for number, rule in enumerate(table["rules"], start=1)
        ),
    )
    return format_html(
        '<p>Hit policy: <strong>{}</strong></p><table class="dmn-table"><thead>{}</thead><tbody>{}</tbody></table>',
        table["hit_policy"],
        head,
        rows,
    )


@admin.register(DecisionDefinition)
class DecisionDefinitionAdmin(admin.ModelAdmin):
    list_display = ("decision_key", "version", "name", "is_active", "deployed_by", "deployed_at")
    list_filter = ("decision_key", "is_active")
    search_fields = ("decision_key", "name")
    list_select_related = ("deployed_by",)
    readonly_fields = (
        "decision_key",
        "version",
        "name",
        "decision_table",
        "evaluate_link",
        "deployed_by",
        "deployed_at",
        "dmn_xml",
    )
    fields = readonly_fields[:3] + ("is_active",) + readonly_fields[3:]

    @admin.display(description="Decision table")
    def decision_table(self, obj):
        return decision_table_html(obj.table)

    @admin.display(description="Test")
    def evaluate_link(self, obj):
        url = reverse("admin:tasks_decisiondefinition_evaluate", args=[obj.pk])
        return format_html('<a href="{}">Evaluate this decision on given inputs</a>', url)

    def get_urls(self):
        evaluate = path(
            "<int:object_id>/evaluate/",
            self.admin_site.admin_view(self.evaluate_view),
            name="tasks_decisiondefinition_evaluate",
        )
        return [evaluate, *super().get_urls()]

    def evaluate_view(self, request, object_id):
        decision = get_object_or_404(DecisionDefinition, pk=object_id)
        if not self.has_view_permission(request, decision):
            raise PermissionDenied
        form = DecisionEvaluateForm(request.POST or None, decision=decision)
        result, problem = None, None
        if request.method == "POST" and form.is_valid():
            try:
                result = decision_evaluate(decision=decision, variables=form.variables())
            except WorkflowError as exc:
                problem = exc.detail
        outputs = [o["name"] for o in decision.table["outputs"]]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Evaluate {decision}",
            "opts": self.opts,
            "decision": decision,
            "table": decision_table_html(decision.table),
            "form": form,
            "outputs": outputs,
            "rows": [[row.get(name) for name in outputs] for row in result] if result is not None else None,
            "problem": problem,
        }
        return TemplateResponse(request, EVALUATE_TEMPLATE, context)

    def add_view(self, request, form_url="", extra_context=None):
        """Deploy through decision_deploy, the same service (and checks) as the API and deploy_workflow."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DecisionUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                deployment = decision_deploy(user=request.user, dmn_xml=form.cleaned_data["dmn_file"])
            except WorkflowError as exc:
                form.add_error("dmn_file", exc.detail)
            else:
                names = ", ".join(f"{d.decision_key} version {d.version}" for d in deployment.decisions)
                verb = "Deployed" if deployment.created else "Unchanged:"
                self.message_user(
                    request, f"{verb} {names}.", messages.SUCCESS if deployment.created else messages.INFO
                )
                return redirect(reverse("admin:tasks_decisiondefinition_change", args=[deployment.decisions[0].pk]))
        admin_form = helpers.AdminForm(form, [(None, {"fields": ("dmn_file",)})], {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Deploy DMN decisions",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        obj.save(update_fields=["is_active"])  # versions are immutable; only retiring one is allowed

    def save_related(self, request, form, formsets, change):
        return None

    def has_delete_permission(self, request, obj=None):
        return False
