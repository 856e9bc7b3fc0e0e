#include "cli.h"

/* placeholder until the extract command lands (this session) */
int cmd_extract(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("extract: not built yet");
}
