"""distillkit: a course kit for privileged-information (teacher-student) distillation."""

__version__ = "0.1.0"
