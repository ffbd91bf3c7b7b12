// The sdscript interpreter (placeholder).
