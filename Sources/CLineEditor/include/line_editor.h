// libedit glue for the interactive prompt. Placeholder: filled in by the REPL work.
#pragma once
