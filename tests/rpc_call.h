// One unary call of the Homeward gRPC API the way the service tests make it: a deadline, and
// the caller's raw API key as "authorization: Bearer <key>". Every server test used to carry
// its own copy of these lines (server, leads, access matrix, deletion trace, hostile input,
// retention, multi-server, PostgreSQL).
//
// THREAD SAFETY: as the stub's (gRPC stubs may be shared between threads).
#ifndef HOMEWARD_TESTS_RPC_CALL_H_
#define HOMEWARD_TESTS_RPC_CALL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "homeward/v1/homeward.grpc.pb.h"

namespace homeward::testing {

// A method of the generated stub, e.g. &v1::Homeward::Stub::CreateCase.
template <typename Req, typename Resp>
using Rpc = grpc::Status (v1::Homeward::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

// Calls stub.*method(req) and stores the reply in *resp. An empty `raw_key` sends no
// authorization header. Returns the call's status (DEADLINE_EXCEEDED after `deadline`).
template <typename Req, typename Resp>
grpc::Status CallRpc(v1::Homeward::Stub& stub, Rpc<Req, Resp> method, const std::string& raw_key,
                     const Req& req, Resp* resp,
                     std::chrono::milliseconds deadline = std::chrono::seconds(120)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  if (!raw_key.empty()) ctx.AddMetadata("authorization", "Bearer " + raw_key);
  return (stub.*method)(&ctx, req, resp);
}

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_RPC_CALL_H_
