// Convenience umbrella: every public SDK header. Plugins may include just the kind they implement.
#pragma once

#include <samokoder/abi.h>
#include <samokoder/sdk/agent.hpp>
#include <samokoder/sdk/auth.hpp>
#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/http_client.hpp>
#include <samokoder/sdk/llm.hpp>
#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/preview.hpp>
#include <samokoder/sdk/redact.hpp>
#include <samokoder/sdk/scheduler.hpp>
#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage.hpp>
