"""The project's templates (MJML and text for emails, Jinja2 pages for the web app), shipped as package data.

Found through this package's own location, so a wheel install finds them exactly as a checkout does.
"""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent
