#include "ietf.h"
void ietf_handle(struct endpoint *ep, struct http_request *req) { (void)ep; http_res_text(req, 501, NULL, "todo"); }
void ietf_add_limit(struct endpoint *ep, struct http_request *req, const struct upload_info *info) { (void)ep; (void)req; (void)info; }
