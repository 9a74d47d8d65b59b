// RunBeanstalkLoad: the load generator's workloads over the beanstalkd protocol (see
// beanstalk_load.cpp); `conveyor bench --beanstalkd HOST:PORT`.
#pragma once

#include "bench/load_generator.h"

namespace conveyor {

int RunBeanstalkLoad(const LoadOptions& options);

}  // namespace conveyor
