/* sesame: the admin command. It works on the instance's store directly (SQLite allows a
 * second process), so it needs no running sesamed. Exit codes: 0 done, 1 failed, 2 usage. */
#include "admin/admin.h"

int main(int argc, char **argv)
{
    return admin_main(argc, argv);
}
