#include "cli.h"

/* placeholder until the grade command lands (this session) */
int cmd_grade(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("grade: not built yet");
}
