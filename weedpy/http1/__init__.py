"""HTTP/1.1 core shared by the gateway, the native server and the differ.

Sans-IO readers (`ServerConnection`, `ClientConnection`) on httptools, serialisation helpers, and
trio shells (`serve_connection`, `Exchange`, `UpstreamPool`) kept thin around them.
"""

from weedpy.http1._events import (
    CONNECTION_CLOSED as CONNECTION_CLOSED,
    END_OF_MESSAGE as END_OF_MESSAGE,
    NEED_DATA as NEED_DATA,
    ConnectionClosed as ConnectionClosed,
    Data as Data,
    EndOfMessage as EndOfMessage,
    Headers as Headers,
    InformationalResponse as InformationalResponse,
    ProtocolError as ProtocolError,
    Request as Request,
    Response as Response,
)
from weedpy.http1._parse import (
    ClientConnection as ClientConnection,
    ServerConnection as ServerConnection,
    canonical_head as canonical_head,
    go_parses_request_line as go_parses_request_line,
    read_whole_response as read_whole_response,
)
from weedpy.http1._write import (
    CONTINUE_100 as CONTINUE_100,
    HOP_BY_HOP as HOP_BY_HOP,
    LAST_CHUNK as LAST_CHUNK,
    REASONS as REASONS,
    chunk as chunk,
    end_to_end_headers as end_to_end_headers,
    format_http_date as format_http_date,
    go_bad_request as go_bad_request,
    http_date as http_date,
    request_head as request_head,
    response_head as response_head,
    simple_response as simple_response,
)
from weedpy.http1._trio import (
    MAX_POST_HANDLER_READ as MAX_POST_HANDLER_READ,
    RECV_SIZE as RECV_SIZE,
    RST_AVOIDANCE_DELAY as RST_AVOIDANCE_DELAY,
    Exchange as Exchange,
    UpstreamConn as UpstreamConn,
    UpstreamPool as UpstreamPool,
    send_go_response as send_go_response,
    serve_connection as serve_connection,
    settle_body as settle_body,
)
from weedpy.http1._gowire import (
    GoHeader as GoHeader,
    GoResponse as GoResponse,
    WireHead as WireHead,
    canonical_key as canonical_key,
    go_response_bytes as go_response_bytes,
    serialize_head as serialize_head,
)
from weedpy.http1._fastio import (
    SPREAD_DEFER as SPREAD_DEFER,
    accept_forever as accept_forever,
    FastStream as FastStream,
    Spread as Spread,
    fast_connect as fast_connect,
    listening_socket as listening_socket,
    serve_fast as serve_fast,
)
