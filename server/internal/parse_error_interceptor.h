// ParseErrorInterceptor: gRPC C++ 1.51 answers a request it cannot parse with UNIMPLEMENTED and
// an empty message, before any handler runs. The common cause is a proto3 string field that is
// not valid UTF-8 (protobuf refuses to parse it). For the methods of homeward.v1.Homeward this
// interceptor turns that answer into INVALID_ARGUMENT with a message that says what to fix; a
// method the service does not have stays UNIMPLEMENTED.
//
// THREAD SAFETY: one interceptor per call, created by the factory (stateless).
#ifndef HOMEWARD_SERVER_INTERNAL_PARSE_ERROR_INTERCEPTOR_H_
#define HOMEWARD_SERVER_INTERNAL_PARSE_ERROR_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"

namespace homeward::server::internal {

class ParseErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ParseErrorInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status s = methods->GetSendStatus();
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED && s.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("the ", method_,
                         " request could not be parsed: a text field is not valid UTF-8 (send "
                         "text as UTF-8), or the message is not a valid protobuf")));
      }
    }
    methods->Proceed();
  }

 private:
  std::string method_;
};

class ParseErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // "/homeward.v1.Homeward/Search" -> "homeward.v1.Homeward.Search", a method of the proto.
    const std::string path = info->method() == nullptr ? "" : info->method();
    constexpr char kPrefix[] = "/homeward.v1.Homeward/";
    if (!absl::StartsWith(path, kPrefix)) return nullptr;
    const std::string full = absl::StrReplaceAll(path.substr(1), {{"/", "."}});
    if (google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full) == nullptr) {
      return nullptr;
    }
    return new ParseErrorInterceptor(path.substr(sizeof(kPrefix) - 1));
  }
};

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_PARSE_ERROR_INTERCEPTOR_H_
