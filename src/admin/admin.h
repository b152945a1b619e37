/* admin: the `sesame` command's verbs (init, account, key, identity). */
#ifndef SESAME_ADMIN_H
#define SESAME_ADMIN_H

int admin_main(int argc, char **argv);

#endif
