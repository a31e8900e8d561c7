"""Wiring only: one FunctionApp that registers every blueprint."""

import azure.functions as func

from functions import health, join, launch, notifications, portal, reports, visits

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (health.bp, launch.bp, visits.bp, join.bp, portal.bp, notifications.bp, reports.bp):
    app.register_functions(blueprint)
