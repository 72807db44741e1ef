#!/bin/sh
# Renders gradserve.conf.template into nginx's configuration, then runs the given command.
# docker-compose.yml starts the official nginx image with `sh render.sh nginx -g 'daemon off;'`
# and these variables (tests/system/test_deploy.py runs it with the same ones):
#
# NGINX_TEMPLATE   the template, deploy/nginx/gradserve.conf.template mounted in the container
# NGINX_CONF       the configuration written, in nginx's conf.d
# NGINX_UPSTREAMS  the gradserve replicas, "host:port" separated by spaces: each becomes one
#                  `server host:port;` line of the upstream block, as tests/support/proxy.py renders it
# NGINX_LISTEN     what nginx listens on, such as 80
set -eu

servers=""
for upstream in ${NGINX_UPSTREAMS:?the gradserve replicas, host:port separated by spaces}; do
    servers="${servers:+$servers\\n    }server $upstream;"
done

sed -e "s|{{UPSTREAM_SERVERS}}|$servers|" -e "s|{{LISTEN}}|${NGINX_LISTEN:?such as 80}|" \
    "${NGINX_TEMPLATE:?the template}" >"${NGINX_CONF:?the configuration to write}"
echo "render.sh: wrote $NGINX_CONF, upstream servers $NGINX_UPSTREAMS" >&2

exec "$@"
