/**
 * node:http request and response classes whose prototypes are the Express app's own.
 *
 * Express gives every request and response the app's prototypes with Object.setPrototypeOf. On an
 * object that node:http made from its own classes, that costs V8 a new hidden class per object, and
 * under load about a quarter of what a request allocates then survived into the old generation: a
 * full GC every ~0.4 s, and a bare Express app ran at 14 k req/s instead of 50 k (bench/README.md).
 * When node:http makes them from these classes they already have that prototype, and Express's
 * call changes nothing. Express documents `app.request` / `app.response` as those prototypes.
 */
import http from 'node:http';
import type { Express } from 'express';

/** Makes `app.request` / `app.response` the prototypes of the returned classes; pass them to http(s).createServer. */
export function serverClasses(app: Express) {
  class Request extends http.IncomingMessage {}
  class Response extends http.ServerResponse {}
  adopt(Request.prototype, app.request, app);
  adopt(Response.prototype, app.response, app);
  // Express's own types call these its Request / Response; they are the same objects it built them from.
  (app as { request: object }).request = Request.prototype;
  (app as { response: object }).response = Response.prototype;
  return { IncomingMessage: Request, ServerResponse: Response };
}

/** `target` takes the place of Express's `appProto`: the same parent (express's request or response) and the same `app` property. */
function adopt(target: object, appProto: object, app: Express): void {
  Object.setPrototypeOf(target, Object.getPrototypeOf(appProto) as object);
  Object.defineProperty(target, 'app', { configurable: true, enumerable: true, writable: true, value: app });
}
