/* placeholder */ typedef int sfv_unused;
