#ifndef HOOKGATE_CCURL_SHIM_H
#define HOOKGATE_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt is variadic, which Swift cannot call: typed wrappers, one per argument kind. */
static inline CURLcode hookgate_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode hookgate_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode hookgate_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode hookgate_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode hookgate_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode hookgate_curl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode hookgate_curl_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

/* Callbacks, each with the exact C type curl expects. */
typedef size_t (*hookgate_curl_data_callback)(char *data, size_t size, size_t count, void *userdata);
typedef curl_socket_t (*hookgate_curl_opensocket_callback)(void *clientp, curlsocktype purpose,
                                                           struct curl_sockaddr *address);

static inline CURLcode hookgate_curl_setopt_data_callback(CURL *handle, CURLoption option,
                                                          hookgate_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}
static inline CURLcode hookgate_curl_setopt_opensocket_callback(CURL *handle,
                                                                hookgate_curl_opensocket_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
}
static inline CURLcode hookgate_curl_setopt_blob(CURL *handle, CURLoption option, struct curl_blob *blob) {
    return curl_easy_setopt(handle, option, blob);
}
static inline CURLcode hookgate_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode hookgate_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}
/* CURLMsg's result sits in a union. */
static inline CURLcode hookgate_curl_msg_result(CURLMsg *message) { return message->data.result; }
#endif
