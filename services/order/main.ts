/** Entrypoint of the order service (:5001). */
import { loadConfig } from "@campus/shared/config";
import { startService } from "@campus/shared/service";
import { createOrderService } from "./app.ts";

await startService(loadConfig("order"), createOrderService);
